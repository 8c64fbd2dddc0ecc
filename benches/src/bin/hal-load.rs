//! `hal-load`: HAL measured as its users would, against three real `hal-net serve`
//! processes on 127.0.0.1 (started by the tool in a fresh directory, data synced to disk
//! as in production, or already running with `--license-path`).
//!
//! ```sh
//! cargo build --release -p hal-net -p hal-benches
//! target/release/hal-load load --clients 64 --half-peak     # closed loop, then open at half its rate
//! target/release/hal-load failover --fault kill --trials 20
//! target/release/hal-load failover --fault partition --trials 20
//! target/release/hal-load soak --clients 10000 --duration 5m
//! target/release/hal-load disk --writers 3 --busy-threads 2   # the disk's syncs while the CPUs are busy
//! target/release/hal-load floor --clients 64 --half-peak    # the same load on bare processes: the machine's ceiling
//! target/release/hal-load report --records 1000000          # hal-net report's reading and accounting: time, peak memory
//! sudo target/release/hal-load nemesis --duration 60s        # real faults in network namespaces, judged by hal-sim
//! ```
//!
//! Every figure is printed as one `key=value` line (`load: ...`, `failover: ...`,
//! `soak: ...`, `report: ...`) that scripts such as `benches/compare-etcd.sh` read;
//! `nemesis` ends with `nemesis: faults=N checkouts=M violations=V imported=passed|failed`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use hal_benches::cli::{self, TimingArgs, TrialArgs};
use hal_benches::disk::{self, DiskOptions};
use hal_benches::failover::{self, Fault};
use hal_benches::floor::{self, FloorSeats, FloorTriad};
use hal_benches::hal::{HalSeats, client_id_base};
use hal_benches::load;
use hal_benches::nemesis::{self, NemesisOptions};
use hal_benches::report::{self, SyntheticJournal};
use hal_benches::soak::{self, SoakOptions};
use hal_benches::triad::{JournalUsage, Triad, TriadOptions, sibling_hal_net, statuses_at};
use hal_core::timing::Timing;
use hal_net::addr::LicensePath;
use hal_net::tls_transport::{ClientTransport, TlsTransport};

#[derive(Debug, Parser)]
#[command(about = "Load, failover and soak measurements of a HAL triad")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checkout + checkin cycles: throughput and latency percentiles.
    Load(LoadArgs),
    /// Time from a fault of the active server to the first checkout granted.
    Failover(FailoverArgs),
    /// A closed loop across a license push (`hal-net license push`) halfway through:
    /// failed cycles, whether the active server changed, and how soon every server
    /// served the new COUNT.
    Push(PushArgs),
    /// A rolling restart under a closed loop: SIGTERM and a restart of #3, #2 and then
    /// the active #1 (which hands its role over, and takes it back after the failback
    /// hold), one at a time; failed cycles and the longest checkout wait.
    Rolling(RollingArgs),
    /// A waiting checkout's turn (`checkout --wait`): with the one seat held, a second
    /// client waits in the queue; the time from the holder's checkin to the waiter's
    /// grant, over rounds.
    Queue(QueueArgs),
    /// Many clients holding seats and heartbeating for minutes, with a failover.
    Soak(SoakArgs),
    /// Small records written and synced by several writers at once: the disk's sync
    /// latency, optionally while other threads keep CPUs busy.
    Disk(DiskArgs),
    /// The same load against three bare processes that keep the triad's commit rule
    /// (answer once synced on two of three) with no license logic: the machine's ceiling.
    Floor(FloorArgs),
    /// A Jepsen-style run on a real network (needs root): three servers in network
    /// namespaces, clients throughout, real faults from a seeded schedule (kill -9, cuts,
    /// loss, flapping, latency, a clock step), then the servers' journals judged by
    /// hal-sim. Exit 0 only if every step ran, no invariant was violated, and the
    /// incident imported from the journals replays and passes. Its timers are the LAN
    /// profile's with a 1 s client heartbeat, a 6 s lease and a 3 s failback hold, before
    /// any --timing.
    Nemesis(NemesisArgs),
    /// Holds seats for `soak` (started by it, not by hand).
    #[command(hide = true)]
    SoakWorker(SoakWorkerArgs),
    /// `hal-net report` on a large synthetic journal: the time to read and to account it,
    /// and the peak memory.
    Report(ReportArgs),
    /// One of `floor`'s servers (started by it, not by hand).
    #[command(hide = true)]
    FloorServer(FloorServerArgs),
}

#[derive(Debug, Args)]
struct TriadArgs {
    /// The hal-net executable (default: the one beside hal-load).
    #[arg(long, value_name = "PATH")]
    hal_net: Option<PathBuf>,
    /// Where the started triad keeps its files (cleared first, and kept afterwards;
    /// default: a directory of this run's own, removed unless the run fails).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The first of the ports the triad uses (three, six with proxies).
    #[arg(long, default_value_t = 17300)]
    base_port: u16,
    /// Run the triad and its clients in plaintext (`insecure_plaintext`) instead of TLS,
    /// to measure what TLS costs.
    #[arg(long)]
    insecure: bool,
    /// Servers keep no journal (`[journal] enabled = false`), to measure what the
    /// journal costs. With it (the default), `load` ends with a line of the journals'
    /// size on disk per million requests answered.
    #[arg(long)]
    no_journal: bool,
}

/// Settings of the servers beyond the defaults.
#[derive(Debug, Clone, Copy)]
struct Tune {
    client_connections_max: Option<usize>,
    timing: Timing,
}

impl Tune {
    fn timing(timing: Timing) -> Tune {
        Tune {
            client_connections_max: None,
            timing,
        }
    }
}

/// Where started servers keep their files: `--dir` if `given`, else a directory of this
/// run's own, `PREFIX-PID` in the system's temporary directory.
fn run_dir(given: Option<&PathBuf>, prefix: &str) -> PathBuf {
    given
        .cloned()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("{prefix}-{}", std::process::id())))
}

/// The directory of this run's own that would be used, if `--dir` is not `given`.
fn own_dir(given: Option<&PathBuf>, prefix: &str) -> Option<PathBuf> {
    given.is_none().then(|| run_dir(None, prefix))
}

impl TriadArgs {
    const DIR_PREFIX: &str = "hal-load";

    /// Where the triad keeps its files: `--dir`, or a directory of this run's own.
    fn dir(&self) -> PathBuf {
        run_dir(self.dir.as_ref(), Self::DIR_PREFIX)
    }

    async fn start(&self, count: u32, proxied: bool, tune: Tune) -> Result<Triad> {
        let hal_net = match &self.hal_net {
            Some(path) => path.clone(),
            None => sibling_hal_net()?,
        };
        let dir = self.dir();
        let triad = Triad::start(TriadOptions {
            hal_net,
            dir: dir.clone(),
            base_port: self.base_port,
            count,
            proxied,
            client_connections_max: tune.client_connections_max,
            timing: tune.timing,
            tls: !self.insecure,
            journal: !self.no_journal,
        })
        .await?;
        eprintln!(
            "hal-load: triad started in {} (license path {})",
            dir.display(),
            triad.license_path()
        );
        Ok(triad)
    }
}

#[derive(Debug, Args)]
struct LoadArgs {
    #[command(flatten)]
    shape: cli::LoadShape,
    /// Drive running servers at this license path instead of starting a triad.
    #[arg(long = "license-path", value_name = "PATH")]
    license_path: Option<String>,
    /// The feature to check out from running servers.
    #[arg(long, default_value = hal_benches::triad::FEATURE, requires = "license_path")]
    feature: String,
    /// The running servers' CA certificate (with `--license-path`; without it, and with
    /// `--insecure`, plaintext).
    #[arg(long, value_name = "FILE", requires = "license_path")]
    ca: Option<PathBuf>,
    #[command(flatten)]
    timing: TimingArgs,
    #[command(flatten)]
    triad: TriadArgs,
}

#[derive(Debug, Args)]
struct PushArgs {
    /// Concurrent clients, each with at most one seat (the license has twice as many
    /// seats, and the pushed one ten more).
    #[arg(long, default_value_t = 16)]
    clients: u64,
    /// How long to measure; the push comes halfway through.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long to run first without measuring.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[command(flatten)]
    timing: TimingArgs,
    #[command(flatten)]
    triad: TriadArgs,
}

#[derive(Debug, Args)]
struct RollingArgs {
    /// Concurrent clients, each with at most one seat (the license has twice as many).
    #[arg(long, default_value_t = 16)]
    clients: u64,
    /// How long to measure: the three restarts (and #1's failback) must fit.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How long to run first without measuring.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    #[command(flatten)]
    timing: TimingArgs,
    #[command(flatten)]
    triad: TriadArgs,
}

#[derive(Debug, Args)]
struct QueueArgs {
    /// How many rounds (one checkin and one turn each).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    #[command(flatten)]
    timing: TimingArgs,
    #[command(flatten)]
    triad: TriadArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FaultArg {
    Kill,
    Partition,
}

#[derive(Debug, Args)]
struct FailoverArgs {
    #[arg(long, value_enum, default_value = "kill")]
    fault: FaultArg,
    #[command(flatten)]
    trials: TrialArgs,
    #[command(flatten)]
    timing: TimingArgs,
    #[command(flatten)]
    triad: TriadArgs,
}

#[derive(Debug, Args)]
struct SoakArgs {
    #[arg(long, default_value_t = 10_000)]
    clients: u64,
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Client heartbeat interval (the servers' lease is four of them).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    #[command(flatten)]
    triad: TriadArgs,
}

#[derive(Debug, Args)]
struct DiskArgs {
    /// Writers at once, each with its own file (three: a triad on one machine).
    #[arg(long, default_value_t = 3)]
    writers: usize,
    /// Threads that only spin meanwhile, keeping that many CPUs busy.
    #[arg(long, default_value_t = 0)]
    busy_threads: usize,
    /// Bytes per record (one write and one fdatasync).
    #[arg(long, default_value_t = 1024)]
    record_bytes: usize,
    /// Syncs per second, all writers together (default: each as fast as it can).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Where the files go (default: the system's temporary directory; give a server's
    /// data directory to measure its disk).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Seat records in each server's journal.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Servers whose journals are written (1 to 3), each with every seat change.
    #[arg(long, default_value_t = 1)]
    servers: u8,
    /// The feature's seats (between half and all of them held at any time).
    #[arg(long, default_value_t = 500)]
    seats: u32,
    /// Users taking them, four to a host.
    #[arg(long, default_value_t = 200)]
    users: u32,
    /// Where the journals are written (default: the system's temporary directory), in a
    /// directory of this run's own that is removed at the end.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct FloorArgs {
    #[command(flatten)]
    shape: cli::LoadShape,
    /// Where the servers keep their logs (cleared first, and kept afterwards; default: a
    /// directory of this run's own, removed unless the run fails).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The first of the three ports the servers use (apart from the triad's 17300-17305
    /// and etcd-load's 17400-17405, so that runs side by side do not collide).
    #[arg(long, default_value_t = 17500)]
    base_port: u16,
}

impl FloorArgs {
    const DIR_PREFIX: &str = "hal-load-floor";

    fn dir(&self) -> PathBuf {
        run_dir(self.dir.as_ref(), Self::DIR_PREFIX)
    }
}

#[derive(Debug, Args)]
struct FloorServerArgs {
    #[arg(long)]
    listen: String,
    #[arg(long)]
    log: PathBuf,
    /// The two followers' addresses, for the first server.
    #[arg(long, value_delimiter = ',')]
    followers: Option<Vec<String>>,
}

#[derive(Debug, Args)]
struct NemesisArgs {
    /// How long faults are injected (a calm period and the judging follow).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Seed of the fault schedule (default: drawn at random; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Clients checking seats out and in throughout.
    #[arg(long, default_value_t = 8, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    clients: usize,
    /// Seats of the feature (default: half the clients, so some checkouts find every
    /// seat in use).
    #[arg(long, value_parser = RangedU64ValueParser::<u32>::new().range(1..=i32::MAX as u64))]
    count: Option<u32>,
    /// The hal-net executable (default: the one beside hal-load).
    #[arg(long, value_name = "PATH")]
    hal_net: Option<PathBuf>,
    /// The hal-sim executable that judges the journals (default: the one beside
    /// hal-load).
    #[arg(long, value_name = "PATH")]
    hal_sim: Option<PathBuf>,
    /// The run directory (cleared first, and kept; default: hal-nemesis-PID in the
    /// system's temporary directory).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    timing: TimingArgs,
}

#[derive(Debug, Args)]
struct SoakWorkerArgs {
    /// The servers, `host:port` in path order, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    addrs: Vec<String>,
    /// The triad's CA certificate (plaintext without it).
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long)]
    first_id: u64,
    #[arg(long)]
    clients: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("hal-load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A floor server is stopped by SIGTERM's default action: it has nothing to clean up.
    let outcome = if matches!(cli.command, Command::FloorServer(_)) {
        runtime.block_on(run(cli.command))
    } else {
        runtime.block_on(cli::until_signal(run(cli.command)))
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hal-load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    let made_here = match &command {
        Command::Load(LoadArgs { triad, .. })
        | Command::Push(PushArgs { triad, .. })
        | Command::Rolling(RollingArgs { triad, .. })
        | Command::Queue(QueueArgs { triad, .. })
        | Command::Failover(FailoverArgs { triad, .. })
        | Command::Soak(SoakArgs { triad, .. }) => {
            own_dir(triad.dir.as_ref(), TriadArgs::DIR_PREFIX)
        }
        Command::Floor(args) => own_dir(args.dir.as_ref(), FloorArgs::DIR_PREFIX),
        // The nemesis keeps its directory: it is the evidence.
        Command::Disk(_)
        | Command::Report(_)
        | Command::Nemesis(_)
        | Command::SoakWorker(_)
        | Command::FloorServer(_) => None,
    };
    let result = run_command(command).await;
    // The servers are stopped by now. Their files are kept for a look at a failed run.
    match (result, made_here.filter(|d| d.exists())) {
        (Ok(()), Some(dir)) => std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display())),
        (Err(e), Some(dir)) => Err(anyhow::anyhow!(
            "{e:#}\n(the servers' files and logs are kept in {})",
            dir.display()
        )),
        (result, None) => result,
    }
}

async fn run_command(command: Command) -> Result<()> {
    match command {
        Command::Load(args) => load_cmd(args).await,
        Command::Push(args) => push_cmd(args).await,
        Command::Rolling(args) => rolling_cmd(args).await,
        Command::Queue(args) => queue_cmd(args).await,
        Command::Failover(args) => failover_cmd(args).await,
        Command::Soak(args) => soak_cmd(args).await,
        Command::Disk(args) => disk_cmd(args).await,
        Command::Floor(args) => floor_cmd(args).await,
        Command::Report(args) => report_cmd(args).await,
        Command::Nemesis(args) => nemesis_cmd(args).await,
        Command::SoakWorker(args) => {
            soak::worker(args.addrs, args.ca, args.first_id, args.clients).await
        }
        Command::FloorServer(args) => floor_server(args).await,
    }
}

async fn load_cmd(args: LoadArgs) -> Result<()> {
    // Started here (if asked) and kept until the end: dropping it stops the servers.
    let mut triad = None;
    let timing = args.timing.timing()?;
    let (addrs, feature, transport) = match &args.license_path {
        Some(path) => {
            let addrs = LicensePath::parse(path)
                .with_context(|| format!("--license-path {path}"))?
                .addrs()
                .iter()
                .map(|a| a.connect_string())
                .collect();
            let transport = match (&args.ca, args.triad.insecure) {
                (Some(ca), false) => ClientTransport::Tls(TlsTransport::client(
                    hal_net::tls::client_connector(ca, None)?,
                )),
                (None, true) => ClientTransport::Insecure(hal_net::transport::TcpTransport),
                _ => bail!(
                    "with --license-path, give the servers' --ca, or --insecure for plaintext ones"
                ),
            };
            (addrs, args.feature.clone(), transport)
        }
        None => {
            let count = u32::try_from(args.shape.clients)
                .context("--clients")?
                .max(1);
            let started = args.triad.start(count, false, Tune::timing(timing)).await?;
            let addrs = started.addrs();
            let transport = started.transport();
            triad = Some(started);
            (addrs, hal_benches::triad::FEATURE.to_string(), transport)
        }
    };
    if feature != hal_benches::triad::FEATURE {
        bail!(
            "only the triad's feature '{}' can be driven",
            hal_benches::triad::FEATURE
        );
    }
    let pids = server_pids(triad.as_ref());
    let before = cpu_of(&pids);
    // Client ids apart per round: the replicated state remembers each id's last request.
    let clients = |round: u64| {
        let clients = (0..args.shape.clients)
            .map(|n| {
                let id = client_id_base() + (n << 8) + round;
                HalSeats::new(transport.clone(), addrs.clone(), id, timing)
            })
            .collect();
        std::future::ready(Ok(clients))
    };
    let cpu = |report: &load::Report| cpu_line(&pids, &before, report.cycles);
    let term_before = highest_term(&transport, &addrs).await;
    args.shape.run("hal", clients, cpu).await?;
    // An election raises the term (a pre-vote that fails does not): under load alone
    // there should be none, or the timers are too tight for the machine.
    if let (Some(before), Some(after)) = (term_before, highest_term(&transport, &addrs).await) {
        let elections = after.saturating_sub(before);
        println!("elections: during_run={elections} term_before={before} term_after={after}");
    }
    if let Some(triad) = triad.as_mut().filter(|_| !args.triad.no_journal) {
        triad.stop();
        println!("{}", journal_line(&triad.journal_usage()?));
    }
    drop(triad);
    Ok(())
}

async fn push_cmd(args: PushArgs) -> Result<()> {
    let timing = args.timing.timing()?;
    let count = u32::try_from(args.clients.saturating_mul(2))
        .context("--clients")?
        .max(1);
    let triad = args.triad.start(count, false, Tune::timing(timing)).await?;
    let clients = closed_loop_clients(&triad, args.clients, timing);
    let options = load::LoadOptions {
        mode: load::Mode::Closed,
        warmup: args.warmup,
        duration: args.duration,
    };
    let run = hal_benches::push::measure(&triad, clients, options, count, count + 10).await?;
    println!("{}", run.report.line("hal"));
    println!("{}", run.line());
    if let Some(error) = &run.report.first_error {
        println!("first_error: {error}");
    }
    drop(triad);
    Ok(())
}

/// `count` clients of `triad`, each with its own range of client ids.
fn closed_loop_clients(triad: &Triad, count: u64, timing: Timing) -> Vec<HalSeats> {
    let addrs = triad.addrs();
    let transport = triad.transport();
    (0..count)
        .map(|n| {
            HalSeats::new(
                transport.clone(),
                addrs.clone(),
                client_id_base() + (n << 8),
                timing,
            )
        })
        .collect()
}

async fn rolling_cmd(args: RollingArgs) -> Result<()> {
    let timing = args.timing.timing()?;
    let count = u32::try_from(args.clients.saturating_mul(2))
        .context("--clients")?
        .max(1);
    let mut triad = args.triad.start(count, false, Tune::timing(timing)).await?;
    triad.wait_active(Duration::from_secs(10)).await?;
    let clients = closed_loop_clients(&triad, args.clients, timing);
    let options = load::LoadOptions {
        mode: load::Mode::Closed,
        warmup: args.warmup,
        duration: args.duration,
    };
    let run = hal_benches::rolling::measure(&mut triad, clients, options).await?;
    println!("{}", run.report.line("hal"));
    for line in run.lines() {
        println!("{line}");
    }
    if let Some(error) = &run.report.first_error {
        println!("first_error: {error}");
    }
    drop(triad);
    Ok(())
}

async fn queue_cmd(args: QueueArgs) -> Result<()> {
    let timing = args.timing.timing()?;
    let mut triad = args.triad.start(1, false, Tune::timing(timing)).await?;
    triad.wait_active(Duration::from_secs(10)).await?;
    let run = hal_benches::queue::measure(&triad, args.rounds.max(1)).await?;
    println!("{}", run.line());
    drop(triad);
    Ok(())
}

/// `journal: bytes=... records=... served=... bytes_per_request=... mb_per_million_requests=...`:
/// the three servers' journals on disk against the requests they answered (warm-up
/// included on both sides).
fn journal_line(usage: &JournalUsage) -> String {
    let per_request = usage.bytes as f64 / usage.served.max(1) as f64;
    format!(
        "journal: bytes={} records={} served={} bytes_per_request={per_request:.0} \
         mb_per_million_requests={:.0}",
        usage.bytes,
        usage.records,
        usage.served,
        per_request * 1e6 / 1_048_576.0,
    )
}

/// The highest term any server at `addrs` reports, if any answers.
async fn highest_term(transport: &ClientTransport, addrs: &[String]) -> Option<u64> {
    let reports = statuses_at(transport, addrs).await;
    reports.into_iter().flatten().map(|r| r.term).max()
}

/// The process ids of the three servers, when the tool started them.
fn server_pids(triad: Option<&Triad>) -> Vec<Option<u32>> {
    hal_core::ServerId::ALL
        .iter()
        .map(|&id| triad.and_then(|t| t.pid(id)))
        .collect()
}

/// CPU time so far of each server of `pids` and of this process.
fn cpu_of(pids: &[Option<u32>]) -> Vec<Option<Duration>> {
    let this = Some(std::process::id());
    pids.iter()
        .chain([&this])
        .map(|pid| pid.and_then(hal_benches::procstat::usage).map(|u| u.cpu))
        .collect()
}

/// ` cpu_us_per_cycle_s1=... s2 s3 load=...`: CPU time per cycle of the run since `before`
/// (the warm-up included, so a slight overstatement).
fn cpu_line(pids: &[Option<u32>], before: &[Option<Duration>], cycles: u64) -> String {
    let after = cpu_of(pids);
    let names = ["s1", "s2", "s3", "load"];
    let mut line = String::new();
    for ((name, b), a) in names.iter().zip(before).zip(&after) {
        if let (Some(b), Some(a)) = (b, a) {
            let us = (*a - *b).as_secs_f64() * 1e6 / cycles.max(1) as f64;
            line += &format!(" cpu_us_per_cycle_{name}={us:.1}");
        }
    }
    line
}

async fn failover_cmd(args: FailoverArgs) -> Result<()> {
    let fault = match args.fault {
        FaultArg::Kill => Fault::Kill,
        FaultArg::Partition => Fault::Partition,
    };
    if fault == Fault::Partition && !args.triad.insecure {
        bail!(
            "--fault partition needs --insecure: its proxies read each connection's hello to know which server is on the other end, and TLS hides it"
        );
    }
    let count = u32::try_from(args.trials.background_clients + 64)?;
    let mut triad = args
        .triad
        .start(
            count,
            fault == Fault::Partition,
            Tune::timing(args.timing.timing()?),
        )
        .await?;
    let options = args.trials.options(fault);
    let report = failover::measure(&mut triad, options, "hal").await?;
    println!("{}", report.line("hal"));
    Ok(())
}

async fn floor_cmd(args: FloorArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find hal-load itself")?;
    let mut floor = FloorTriad::start(&exe, &args.dir(), args.base_port)?;
    floor.wait_ready().await?;
    let leader = floor.addr(1);
    let pids = floor.pids();
    let before = cpu_of(&pids);
    let clients = |_round: u64| async {
        let mut clients = Vec::new();
        for _ in 0..args.shape.clients {
            clients.push(FloorSeats::connect(&leader).await?);
        }
        Ok(clients)
    };
    let cpu = |report: &load::Report| cpu_line(&pids, &before, report.cycles);
    args.shape.run("floor", clients, cpu).await?;
    floor.check_running()?;
    let [s1, s2, s3] = floor.stop()?;
    println!("floor: records_s1={s1} records_s2={s2} records_s3={s3}");
    Ok(())
}

/// One floor server, until it is stopped (with SIGTERM, as `floor` does) or fails.
async fn floor_server(args: FloorServerArgs) -> Result<()> {
    match args.followers {
        Some(followers) => {
            let followers: [String; 2] = followers
                .try_into()
                .map_err(|_| anyhow::anyhow!("--followers takes two addresses"))?;
            floor::lead(&args.listen, &followers, &args.log).await
        }
        None => floor::follow(&args.listen, &args.log).await,
    }
}

async fn disk_cmd(args: DiskArgs) -> Result<()> {
    let options = DiskOptions {
        dir: args.dir.unwrap_or_else(std::env::temp_dir),
        writers: args.writers,
        busy_threads: args.busy_threads,
        record_bytes: args.record_bytes,
        rate: args.rate,
        duration: args.duration,
    };
    let report = tokio::task::spawn_blocking(move || disk::run(options)).await??;
    println!("{}", report.line());
    Ok(())
}

async fn report_cmd(args: ReportArgs) -> Result<()> {
    let parent = args.dir.unwrap_or_else(std::env::temp_dir);
    let dir = parent.join(format!("hal-load-report-{}", std::process::id()));
    let options = SyntheticJournal {
        seats: args.seats,
        users: args.users,
        ..SyntheticJournal::new(dir.clone(), args.records, args.servers)
    };
    let cost = tokio::task::spawn_blocking(move || report::run(options)).await?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    println!("{}", cost?.line());
    Ok(())
}

async fn soak_cmd(args: SoakArgs) -> Result<()> {
    // The servers (children of this process) take one connection per client; the
    // clients run in worker processes with limits of their own.
    soak::raise_open_files(args.clients + 1024)?;
    let count = u32::try_from(args.clients)?;
    // Room for every client plus the status queries, and a lease of four heartbeats.
    let mut timing = Timing::lan();
    timing.client_heartbeat = args.heartbeat;
    timing.client_lease = args.heartbeat * 4;
    let tune = Tune {
        client_connections_max: Some(usize::try_from(args.clients)? + 100),
        timing,
    };
    let triad = args.triad.start(count, false, tune).await?;
    let report = soak::run(
        triad,
        SoakOptions {
            clients: args.clients,
            worker_exe: std::env::current_exe().context("cannot find hal-load itself")?,
            duration: args.duration,
        },
    )
    .await?;
    println!("{}", report.line());
    if !report.accounted() {
        bail!("seats were not all accounted for: {}", report.line());
    }
    Ok(())
}

async fn nemesis_cmd(args: NemesisArgs) -> Result<()> {
    let here = std::env::current_exe().context("cannot find hal-load itself")?;
    let seed = args.seed.unwrap_or_else(random_seed);
    let count = args
        .count
        .unwrap_or_else(|| u32::try_from(args.clients.div_ceil(2).max(1)).unwrap_or(u32::MAX));
    let options = NemesisOptions {
        hal_net: match &args.hal_net {
            Some(path) => path.clone(),
            None => sibling_hal_net()?,
        },
        hal_sim: args
            .hal_sim
            .clone()
            .unwrap_or_else(|| here.with_file_name("hal-sim")),
        dir: run_dir(args.dir.as_ref(), "hal-nemesis"),
        duration: args.duration,
        seed,
        clients: args.clients,
        count,
        timing: args.timing.timing_from(nemesis::default_timing())?,
    };
    let replay = replay_command(&here, &args, seed, count);
    eprintln!("nemesis: seed {seed}; replay with: {replay}");
    let report = nemesis::run(&options).await?;
    for line in report.detail_lines() {
        println!("{line}");
    }
    println!("{}", report.summary_line());
    println!("run dir: {}", report.dir.display());
    println!("replay: {replay}");
    if !report.passed() {
        bail!(
            "the nemesis run did not pass (see above; everything is kept in {})",
            report.dir.display()
        );
    }
    Ok(())
}

/// A seed for a run that was given none: any will do, as long as it is printed.
fn random_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
}

/// The command that runs the same schedule again.
fn replay_command(here: &std::path::Path, args: &NemesisArgs, seed: u64, count: u32) -> String {
    let mut command = format!(
        "{} nemesis --seed {seed} --duration {} --clients {} --count {count}",
        here.display(),
        humantime::format_duration(args.duration),
        args.clients
    );
    for (name, value) in &args.timing.overrides {
        command += &format!(" --timing {name}={}", humantime::format_duration(*value));
    }
    command
}
