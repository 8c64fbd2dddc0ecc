//! The `hal-sim` binary: seed sweeps, the replay of one seed with its timeline, and
//! writing one run's history.
//!
//! Exit codes: 0 no violation; 1 a violation (or a simulation that failed); 2 the
//! command line was wrong.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use hal_sim::scenario;
use hal_sim::storage::DiskCounts;
use hal_sim::summary::{self, Failed, Recovery, Seeds, Shard, Summary, SweepWorld};
use hal_sim::sweep::Verdict;
use hal_sim::timeline::Timeline;
use hal_sim::world::{Failure, Planted, Run, WorldConfig, run};

/// `println!` that does not panic when the reader has gone away (`| head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that does not panic when the reader has gone away.
macro_rules! out_part {
    ($($arg:tt)*) => {{
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// The deterministic simulator of the HAL triad.
#[derive(Debug, Parser)]
#[command(name = "hal-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play scenario files (one, or every *.toml under a folder): a timeline with each
    /// expectation met or not for one file, a summary table for several.
    Run(RunArgs),
    /// Run many seeds, each with its own faults and workload; report the violations.
    Sweep(SweepArgs),
    /// Run one seed again, printing its timeline and its verdict.
    Replay(ReplayArgs),
    /// Write one run's history (JSON Lines, scenarios/README.md).
    History(HistoryArgs),
    /// Combine the summaries of every shard of one sweep (`sweep --shard K/N --summary
    /// FILE`) into the result one unsharded sweep gives; exit 1 if any seed violated.
    Merge(MergeArgs),
    /// Judge a real triad's run from its servers' journals (`data_dir/journal` of each):
    /// merge them on one clock and check the invariants server records can decide; print
    /// each violation with the journal lines that show it. Exit 0 when clean, 1 on a
    /// violation, 2 when a journal cannot be read.
    Check(CheckArgs),
    /// Measure the checkers' bug-finding power: for each planted bug, run seeds until a
    /// violation catches it, and print `plant: NAME caught_after=K` (K seeds run).
    Plants(PlantsArgs),
    /// Write a scenario file that replays a field incident from the servers' journals.
    Import(hal_sim::import::cli::ImportArgs),
}

#[derive(Debug, Args)]
struct PlantsArgs {
    /// The most seeds to run per bug.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Only this bug (repeatable); default: every bug this build plants that a seed
    /// sweep can reach (not `trust-hello`: the sweeps run no impostor).
    #[arg(long, value_parser = Planted::parse)]
    only: Vec<Planted>,
    #[command(flatten)]
    shape: Shape,
    /// Seeds run in parallel (default: the number of cores). The results do not depend
    /// on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// List the bugs this build can plant, and stop.
    #[arg(long)]
    list: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Journal directories (`data_dir/journal`), the servers' data directories, or journal
    /// files, of one triad's servers.
    #[arg(required = true)]
    journals: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The summary file of every shard (in any order).
    #[arg(required = true)]
    summaries: Vec<PathBuf>,
    /// Write the merged summary here (the same JSON an unsharded `sweep --summary` writes).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The shape of every seed's world.
#[derive(Debug, Clone, Args)]
struct Shape {
    /// Simulated time per seed: two thirds of faults, then a third healed.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The timing profile.
    #[arg(long, default_value = "lan", value_parser = ["lan", "wan"])]
    profile: String,
    /// Simulated clients.
    #[arg(long, default_value_t = 5)]
    clients: usize,
}

/// What world to run.
#[derive(Debug, Clone, Args)]
struct WorldArgs {
    /// The seed (replay and history).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    shape: Shape,
    /// Plant a bug on purpose, to see the checkers catch it (`hal-sim plants` lists and
    /// measures them).
    #[arg(long, value_parser = Planted::parse)]
    plant: Option<Planted>,
}

impl WorldArgs {
    fn config(&self, seed: u64) -> WorldConfig {
        let mut config = WorldConfig::lan(seed, self.shape.clients);
        if self.shape.profile == "wan" {
            let wan = hal_core::timing::Timing::wan();
            config.timing = hal_core::timing::Timing {
                max_clock_skew: hal_sim::world::seed_skew(seed, wan.max_clock_skew),
                ..wan
            };
        }
        config.chaos = self.shape.duration * 2 / 3;
        config.calm = self.shape.duration - config.chaos;
        config.planted = self.plant;
        config
    }

    /// The arguments that reproduce this world, for the replay command line.
    fn replay_command(&self, seed: u64) -> String {
        let plant = self
            .plant
            .map(|p| format!(" --plant {}", p.name()))
            .unwrap_or_default();
        format!(
            "hal-sim replay --seed {seed} --duration {} --profile {} --clients {}{plant}",
            humantime::format_duration(self.shape.duration),
            self.shape.profile,
            self.shape.clients
        )
    }
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    world: WorldArgs,
    /// Also write the run's timeline as an HTML page here (self-contained, works offline).
    #[arg(long)]
    html: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SweepArgs {
    /// The seeds, `A..B` (B excluded).
    #[arg(long, value_parser = parse_seeds)]
    seeds: std::ops::Range<u64>,
    #[command(flatten)]
    world: WorldArgs,
    /// Write `seed-S.jsonl` for every seed into this directory.
    #[arg(long)]
    history_dir: Option<PathBuf>,
    /// Write the timeline of every violating seed as an HTML page, `seed-S.html`, into
    /// this directory.
    #[arg(long)]
    html_dir: Option<PathBuf>,
    /// Seeds run in parallel (default: the number of cores). The results do not depend
    /// on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Shrink each violating seed's faults to a minimal scenario and write it as
    /// `failing-SEED.toml` (into --shrink-dir).
    #[arg(long)]
    shrink: bool,
    /// Where --shrink writes its files.
    #[arg(long, default_value = ".")]
    shrink_dir: PathBuf,
    /// Run only shard K of N (K counts from 0): the K-th of N contiguous slices of
    /// --seeds. `hal-sim merge` combines the shards' --summary files.
    #[arg(long, value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Write the sweep's result as JSON here (for `hal-sim merge`).
    #[arg(long)]
    summary: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct HistoryArgs {
    #[command(flatten)]
    world: WorldArgs,
    /// Where to write the history.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A scenario file, or a folder of them (searched recursively).
    path: PathBuf,
    /// Run with this seed instead of the file's (or the default, 1).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run every scenario with each of these seeds, `A..B` (B excluded).
    #[arg(long, value_parser = parse_seeds)]
    seeds: Option<std::ops::Range<u64>>,
    /// Print the timeline even when several runs are made.
    #[arg(long)]
    timeline: bool,
    /// Write the history of the run (one file, one seed) here, as JSON Lines.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Write the timeline of the run (one file, one seed) here, as an HTML page
    /// (self-contained, works offline).
    #[arg(long)]
    html: Option<PathBuf>,
    /// Runs in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Plant a bug on purpose (`hal-sim plants` lists them; `trust-hello`: the servers
    /// believe a peer's hello, so an impostor step is welcomed).
    #[arg(long, value_parser = Planted::parse)]
    plant: Option<Planted>,
    /// Print one JSON document instead of text: every run (verdict, expectations and
    /// checks judged, violation, replay command) and every refused file's problems.
    #[arg(long, conflicts_with = "timeline")]
    json: bool,
}

fn parse_seeds(text: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("'{text}' is not a range like 0..200"))?;
    let a: u64 = a.parse().map_err(|_| format!("'{a}' is not a seed"))?;
    let b: u64 = b.parse().map_err(|_| format!("'{b}' is not a seed"))?;
    if a >= b {
        return Err(format!("the range {text} is empty (the end is excluded)"));
    }
    Ok(a..b)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(problem) = init_log() {
        eprintln!("error: HAL_SIM_LOG: {problem}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Run(args) => run_scenarios(&args),
        Command::Sweep(args) => sweep(&args),
        Command::Replay(args) => replay(&args),
        Command::History(args) => history(&args),
        Command::Merge(args) => merge(&args),
        Command::Check(args) => check_journals(&args),
        Command::Plants(args) => plants(&args),
        Command::Import(args) => hal_sim::import::cli::main(&args),
    }
}

fn check_journals(args: &CheckArgs) -> ExitCode {
    let journals = match hal_net::journal::read::read(&args.journals) {
        Ok(journals) => journals,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = hal_sim::field::check(&journals);
    let servers: Vec<String> = report.servers.iter().map(|s| format!("#{s}")).collect();
    let reference = report
        .reference
        .map_or_else(|| "no clock".to_string(), |r| r.to_string());
    out!(
        "checked {} records of {} from {} to {}, on {reference}",
        report.records,
        servers.join(", "),
        hal_sim::field::wall(report.from_ms),
        hal_sim::field::wall(report.to_ms)
    );
    for (server, offset) in &report.offsets {
        if let Some(offset) = offset {
            out!("  #{server}'s clock: {offset:+} ms from {reference}");
        }
    }
    for note in &report.notes {
        out!("note: {note}");
    }
    for violation in &report.violations {
        out!("{violation}");
    }
    out!("violations: {}", report.violations.len());
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The servers' own log lines, for a developer following a run: off unless `HAL_SIM_LOG`
/// holds a filter (`debug`, `hal_net=debug`, the `RUST_LOG` syntax). Each line is stamped
/// with simulated time and carries the server's `node{id=N}` span. Runs in parallel
/// (`--jobs`) interleave their lines; use `--jobs 1` or one seed.
fn init_log() -> Result<(), String> {
    let Ok(filter) = std::env::var("HAL_SIM_LOG") else {
        return Ok(());
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).map_err(|e| e.to_string())?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimTime)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| e.to_string())
}

/// Log time stamps in simulated time (seconds since the run started).
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(t) => write!(w, "{:>9.3}s", t.as_secs_f64()),
            None => write!(w, "{:>10}", "-"),
        }
    }
}

/// The history of a run, whether it was judged or failed.
fn history_of(outcome: &Result<Run, Failure>) -> &[String] {
    match outcome {
        Ok(run) => &run.history,
        Err(failure) => &failure.history,
    }
}

/// Prints a history as a timeline (stops quietly if the reader goes away).
fn print_timeline(history: &[String]) {
    let mut timeline = Timeline::default();
    let mut out = std::io::stdout().lock();
    for line in history {
        if let Some(text) = timeline.line(line)
            && writeln!(out, "{text}").is_err()
        {
            break;
        }
    }
}

/// The command that replays one scenario run.
fn scenario_replay(path: &std::path::Path, seed: u64, plant: Option<&str>) -> String {
    let plant = plant.map(|p| format!(" --plant {p}")).unwrap_or_default();
    format!("hal-sim run {} --seed {seed}{plant}", path.display())
}

/// One line saying how a scenario run ended.
fn scenario_summary(outcome: &scenario::Outcome) -> String {
    let met = outcome.judged.iter().filter(|j| j.met).count();
    let total = outcome.judged.len();
    match outcome.verdict() {
        scenario::Verdict::Passed => format!("passed ({met}/{total} expectations and checks met)"),
        scenario::Verdict::Unmet(n) => {
            format!("FAILED: {n} of {total} expectations and checks not met")
        }
        scenario::Verdict::Violation => "FAILED: invariant violated".to_string(),
        scenario::Verdict::Failed => {
            "FAILED: the simulation failed or a fault took no effect".to_string()
        }
    }
}

fn run_scenarios(args: &RunArgs) -> ExitCode {
    let files = if args.path.is_dir() {
        match scenario::files(&args.path) {
            Ok(files) if files.is_empty() => {
                eprintln!(
                    "error: no scenario files (*.toml) under {}",
                    args.path.display()
                );
                return ExitCode::from(2);
            }
            Ok(files) => files,
            Err(error) => {
                eprintln!("error: cannot read {}: {error}", args.path.display());
                return ExitCode::from(2);
            }
        }
    } else {
        vec![args.path.clone()]
    };
    let mut scenarios = Vec::new();
    let mut refused = Vec::new();
    for file in &files {
        match scenario::load(file) {
            Ok(loaded) => {
                if !args.json {
                    for warning in &loaded.warnings {
                        eprintln!("warning: {warning}");
                    }
                }
                scenarios.push((file.clone(), loaded));
            }
            Err(errors) => {
                if !args.json {
                    for error in errors.all() {
                        eprintln!("error: {error}");
                    }
                }
                refused.push((file.clone(), errors));
            }
        }
    }
    let bad = refused.len();
    let runs: Vec<(usize, u64)> = scenarios
        .iter()
        .enumerate()
        .flat_map(|(i, (_, s))| {
            let seeds = match (&args.seeds, args.seed) {
                (Some(range), _) => range.clone(),
                (None, Some(seed)) => seed..seed + 1,
                (None, None) => {
                    let seed = s.seed.unwrap_or(scenario::DEFAULT_SEED);
                    seed..seed + 1
                }
            };
            seeds.map(move |seed| (i, seed))
        })
        .collect();
    let plant = args.plant;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let outcomes = hal_sim::sweep::parallel(&runs, jobs, |&(i, seed)| {
        scenario::run(&scenarios[i].1, seed, plant)
    });
    let single = runs.len() == 1 && bad == 0;
    if let Some(path) = &args.history {
        let [outcome] = &outcomes[..] else {
            eprintln!("error: --history writes one run's history: give one file and one seed");
            return ExitCode::from(2);
        };
        if let Err(error) = write_history(path, &outcome.history) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &args.html {
        let [outcome] = &outcomes[..] else {
            eprintln!("error: --html draws one run: give one file and one seed");
            return ExitCode::from(2);
        };
        let page = hal_sim::html::page(
            &outcome.history,
            outcome.violation.as_ref(),
            outcome.failure.as_ref().map(ToString::to_string).as_deref(),
        );
        if let Err(error) = std::fs::write(path, page) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if args.json {
        return print_json(args, &runs, &outcomes, &scenarios, &refused);
    }
    let mut failed = 0;
    for (&(i, seed), outcome) in runs.iter().zip(&outcomes) {
        let (file, loaded) = &scenarios[i];
        if single || args.timeline {
            print_timeline(&outcome.history);
            out!("");
            out!("{}: {}", loaded.name, scenario_summary(outcome));
        }
        if !outcome.passed() {
            failed += 1;
            if !(single || args.timeline) {
                out!(
                    "{} (seed {seed}): {}",
                    file.display(),
                    scenario_summary(outcome)
                );
            }
            for unmet in outcome.unmet() {
                out!("  {unmet}");
            }
            if let Some(violation) = &outcome.violation {
                out_part!("  {violation}");
            }
            if let Some(failure) = &outcome.failure {
                out!("  {failure}");
            }
            out!(
                "  replay: {}",
                scenario_replay(file, seed, args.plant.map(Planted::name))
            );
        }
    }
    if !single && !runs.is_empty() {
        summary_table(&runs, &outcomes, &scenarios);
        out!(
            "runs={} failed={failed} bad_files={bad} wall_s={:.1}",
            runs.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if failed == 0 && bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `hal-sim run --json`: one document with every run and every refused file; the exit
/// code as without `--json`.
fn print_json(
    args: &RunArgs,
    runs: &[(usize, u64)],
    outcomes: &[scenario::Outcome],
    scenarios: &[(PathBuf, scenario::Scenario)],
    refused: &[(PathBuf, scenario::ScenarioErrors)],
) -> ExitCode {
    let plant = args.plant.map(Planted::name);
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .zip(outcomes)
        .map(|(&(i, seed), outcome)| {
            let (file, loaded) = &scenarios[i];
            let replay = scenario_replay(file, seed, plant);
            scenario::run_json(&file.display().to_string(), loaded, outcome, &replay)
        })
        .collect();
    let refused: Vec<serde_json::Value> = refused
        .iter()
        .map(|(file, errors)| scenario::refused_json(&file.display().to_string(), errors))
        .collect();
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    let document = serde_json::json!({
        "runs": runs,
        "refused": refused,
        "failed": failed,
    });
    out!("{document:#}");
    if failed == 0 && refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A table of every run: file, seed, simulated time, verdict.
fn summary_table(
    runs: &[(usize, u64)],
    outcomes: &[scenario::Outcome],
    scenarios: &[(PathBuf, scenario::Scenario)],
) {
    let width = scenarios
        .iter()
        .map(|(f, _)| f.display().to_string().len())
        .max()
        .unwrap_or(8)
        .max(8);
    out!(
        "{:<width$}  {:>6}  {:>8}  result",
        "scenario",
        "seed",
        "sim time"
    );
    for (&(i, seed), outcome) in runs.iter().zip(outcomes) {
        let (file, loaded) = &scenarios[i];
        out!(
            "{:<width$}  {seed:>6}  {:>8}  {}",
            file.display().to_string(),
            humantime::format_duration(loaded.duration).to_string(),
            scenario_summary(outcome)
        );
    }
}

fn replay(args: &ReplayArgs) -> ExitCode {
    let world = &args.world;
    let outcome = run(&world.config(world.seed));
    // If the reader goes away (`| head`), the verdict still decides the exit code.
    print_timeline(history_of(&outcome));
    if let Some(path) = &args.html
        && let Err(error) = write_html(path, &outcome)
    {
        eprintln!("error: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    verdict(world, world.seed, &outcome)
}

/// Writes the HTML page of a run of the world.
fn write_html(path: &std::path::Path, outcome: &Result<Run, Failure>) -> std::io::Result<()> {
    let page = match outcome {
        Ok(run) => hal_sim::html::page(&run.history, run.violation.as_ref(), None),
        Err(failure) => {
            hal_sim::html::page(&failure.history, None, Some(&failure.what.to_string()))
        }
    };
    std::fs::write(path, page)
}

/// Prints the verdict of a run of `seed`: no violation, or what went wrong and the
/// command that replays it.
fn verdict(args: &WorldArgs, seed: u64, outcome: &Result<Run, Failure>) -> ExitCode {
    let report = match outcome {
        Ok(Run {
            violation: None, ..
        }) => {
            out!("seed {seed}: no violation");
            return ExitCode::SUCCESS;
        }
        Ok(Run {
            violation: Some(violation),
            ..
        }) => violation.to_string(),
        Err(failure) => format!("{failure}\n"),
    };
    out_part!("seed {seed}: {report}");
    out!("replay: {}", args.replay_command(seed));
    ExitCode::FAILURE
}

fn history(args: &HistoryArgs) -> ExitCode {
    let outcome = run(&args.world.config(args.world.seed));
    let history = history_of(&outcome);
    if let Err(error) = write_history(&args.out, history) {
        eprintln!("error: cannot write {}: {error}", args.out.display());
        return ExitCode::FAILURE;
    }
    out!("wrote {} ({} records)", args.out.display(), history.len());
    verdict(&args.world, args.world.seed, &outcome)
}

/// What the sweep's disks went through: recovery exercised, or not.
fn disks_line(d: &DiskCounts) -> String {
    format!(
        "disks: boots={} syncs={} crashes_unsynced={} writes_torn={} writes_lost={} \
         names_lost={} torn_tails_truncated={} compactions={} compactions_finished={}",
        d.boots,
        d.syncs,
        d.crashes_unsynced,
        d.writes_torn,
        d.writes_lost,
        d.names_lost,
        d.torn_tails_truncated,
        d.compactions,
        d.compactions_finished
    )
}

/// Where recovery ran (the first ten seeds of each kind), if anywhere.
fn recovery_line(r: &Recovery) -> Option<String> {
    let seeds = |seeds: &[u64]| {
        let mut text: Vec<String> = seeds.iter().take(10).map(u64::to_string).collect();
        if seeds.len() > 10 {
            text.push(format!("and {} more", seeds.len() - 10));
        }
        text.join(" ")
    };
    let mut parts = Vec::new();
    if !r.torn_tails_truncated.is_empty() {
        parts.push(format!(
            "torn tails cut at seeds {}",
            seeds(&r.torn_tails_truncated)
        ));
    }
    if !r.compactions_finished.is_empty() {
        parts.push(format!(
            "compactions finished at seeds {}",
            seeds(&r.compactions_finished)
        ));
    }
    (!parts.is_empty()).then(|| format!("recovery: {}", parts.join("; ")))
}

fn sweep(args: &SweepArgs) -> ExitCode {
    for dir in args.history_dir.iter().chain(&args.html_dir) {
        if let Err(error) = std::fs::create_dir_all(dir) {
            eprintln!("error: cannot create {}: {error}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let seeds = match args.shard {
        Some(shard) => {
            let slice = shard.seeds(&args.seeds);
            eprintln!(
                "shard {shard}: seeds {}..{} of {}..{}",
                slice.start, slice.end, args.seeds.start, args.seeds.end
            );
            slice
        }
        None => args.seeds.clone(),
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let started = Instant::now();
    let progress = progress_bar(seeds.end - seeds.start);
    let disks = std::sync::Mutex::new((DiskCounts::default(), Recovery::default()));
    let done = |seed: u64, outcome: &Result<Run, Failure>| {
        let violated = !matches!(outcome, Ok(run) if run.violation.is_none());
        progress.report(seed, violated);
        if let Ok(run) = outcome {
            let mut sum = disks.lock().unwrap_or_else(|e| e.into_inner());
            sum.0 = sum.0.plus(run.disks);
            sum.1.note(seed, &run.disks);
        }
        if let Some(dir) = &args.history_dir {
            let history = history_of(outcome);
            let path = dir.join(format!("seed-{seed}.jsonl"));
            if let Err(error) = write_history(&path, history) {
                eprintln!("warning: cannot write {}: {error}", path.display());
            }
        }
        if let Some(dir) = args.html_dir.as_ref().filter(|_| violated) {
            let path = dir.join(format!("seed-{seed}.html"));
            if let Err(error) = write_html(&path, outcome) {
                eprintln!("warning: cannot write {}: {error}", path.display());
            }
        }
    };
    let verdicts = hal_sim::sweep::sweep(seeds.clone(), jobs, |seed| args.world.config(seed), done);
    progress.finish();
    let (disks, mut recovery) = disks.into_inner().unwrap_or_else(|e| e.into_inner());
    recovery.sort();
    eprintln!("{}", disks_line(&disks));
    if let Some(line) = recovery_line(&recovery) {
        eprintln!("{line}");
    }
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| v.violation.is_some()).collect();
    let result = Summary {
        format: summary::FORMAT.to_string(),
        seeds: Seeds::from(&args.seeds),
        shard: args.shard,
        ran: Seeds::from(&seeds),
        world: SweepWorld {
            duration: humantime::format_duration(args.world.shape.duration).to_string(),
            profile: args.world.shape.profile.clone(),
            clients: args.world.shape.clients,
            plant: args.world.plant.map(|p| p.name().to_string()),
        },
        violations: failed
            .iter()
            .map(|v| Failed {
                seed: v.seed,
                report: v.violation.clone().unwrap_or_default(),
                replay: args.world.replay_command(v.seed),
            })
            .collect(),
        sim_s: verdicts.len() as f64 * args.world.shape.duration.as_secs_f64(),
        wall_s: started.elapsed().as_secs_f64(),
        disks,
        recovery,
    };
    print_failures(&result);
    if args.shrink {
        for verdict in &failed {
            shrink_seed(args, verdict.seed);
        }
    }
    if let Some(path) = &args.summary
        && let Err(error) = result.write(path)
    {
        eprintln!("error: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    out!("{}", result.line());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Each violation's report and the command that replays it.
fn print_failures(result: &Summary) {
    for failed in &result.violations {
        out_part!("seed {}: {}", failed.seed, failed.report);
        out!("replay: {}", failed.replay);
    }
}

fn merge(args: &MergeArgs) -> ExitCode {
    let mut parts = Vec::new();
    for path in &args.summaries {
        match Summary::read(path) {
            Ok(part) => parts.push((path.clone(), part)),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let merged = match summary::merge(&parts) {
        Ok(merged) => merged,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    print_failures(&merged);
    eprintln!("{}", disks_line(&merged.disks));
    if let Some(line) = recovery_line(&merged.recovery) {
        eprintln!("{line}");
    }
    if let Some(path) = &args.out
        && let Err(error) = merged.write(path)
    {
        eprintln!("error: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    out!(
        "merged {} shards of seeds {} ({} world, {}, {} clients{})",
        parts.len(),
        merged.seeds,
        merged.world.profile,
        merged.world.duration,
        merged.world.clients,
        merged
            .world
            .plant
            .as_ref()
            .map(|p| format!(", plant {p}"))
            .unwrap_or_default()
    );
    out!("{}", merged.line());
    if merged.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What caught a planted bug: the invariant's name, or the failure's first line.
fn caught_by(report: &str) -> String {
    let line = report.lines().next().unwrap_or("");
    match line.strip_prefix("invariant violated: ") {
        Some(rest) => rest.split(" at t=").next().unwrap_or(rest).to_string(),
        None => line.to_string(),
    }
}

fn plants(args: &PlantsArgs) -> ExitCode {
    let chosen: Vec<Planted> = if args.only.is_empty() {
        Planted::all()
            .into_iter()
            .filter(|p| *p != Planted::TrustHello)
            .collect()
    } else {
        args.only.clone()
    };
    if args.list {
        for planted in Planted::all() {
            out!("{}", planted.name());
        }
        if !cfg!(feature = "plant") {
            out!("(hal-core's planted bugs need a build with `--features plant`)");
        }
        return ExitCode::SUCCESS;
    }
    if args.seeds == 0 {
        eprintln!("error: --seeds must be at least 1");
        return ExitCode::from(2);
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Seeds run in batches; the first violating seed of the first batch with one is the
    // answer, so it does not depend on `jobs`.
    let batch = (jobs as u64).saturating_mul(2).max(1);
    let started = Instant::now();
    let (mut caught, mut seeds_run) = (0, 0u64);
    for planted in &chosen {
        let world = WorldArgs {
            seed: args.first,
            shape: args.shape.clone(),
            plant: Some(*planted),
        };
        let end = args.first.saturating_add(args.seeds);
        let mut from = args.first;
        let mut found = None;
        while from < end && found.is_none() {
            let to = from.saturating_add(batch).min(end);
            let verdicts =
                hal_sim::sweep::sweep(from..to, jobs, |seed| world.config(seed), |_, _| {});
            found = verdicts
                .into_iter()
                .find_map(|v| v.violation.map(|report| (v.seed, report)));
            seeds_run += match &found {
                Some((seed, _)) => seed - from + 1,
                None => to - from,
            };
            from = to;
        }
        match found {
            Some((seed, report)) => {
                caught += 1;
                out!(
                    "plant: {} caught_after={} seed={seed} by=\"{}\"",
                    planted.name(),
                    seed - args.first + 1,
                    caught_by(&report)
                );
                out!("  replay: {}", world.replay_command(seed));
            }
            None => out!(
                "plant: {} not caught in {} seeds ({}..{end})",
                planted.name(),
                args.seeds,
                args.first
            ),
        }
    }
    out!(
        "plants={} caught={caught} seeds_run={seeds_run} wall_s={:.1}",
        chosen.len(),
        started.elapsed().as_secs_f64()
    );
    if caught == chosen.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Shrinks seed `seed`'s violation to a scenario file, and says where it went.
fn shrink_seed(args: &SweepArgs, seed: u64) {
    let config = args.world.config(seed);
    let shrunk = match hal_sim::shrink::shrink(&config, config.planted) {
        Ok(shrunk) => shrunk,
        Err(why) => {
            out!("shrink seed {seed}: {why}");
            return;
        }
    };
    let path = args.shrink_dir.join(format!("failing-{seed}.toml"));
    let text = scenario::write(&shrunk.scenario);
    if let Err(error) =
        std::fs::create_dir_all(&args.shrink_dir).and_then(|()| std::fs::write(&path, text))
    {
        eprintln!("error: cannot write {}: {error}", path.display());
        return;
    }
    let faults = shrunk
        .scenario
        .steps
        .iter()
        .filter(|s| !matches!(s.action, scenario::Action::Client { .. }))
        .count();
    out!(
        "shrink seed {seed}: {} with {faults} of {} faults and {} of {} clients ({} runs); wrote {}",
        shrunk.invariant,
        shrunk.steps_before,
        shrunk.scenario.clients[0].count.unwrap_or(1),
        shrunk.clients_before,
        shrunk.runs,
        path.display()
    );
    out!(
        "replay: {}",
        scenario_replay(&path, seed, args.world.plant.map(Planted::name))
    );
}

/// Writes a history as JSON Lines.
fn write_history(path: &std::path::Path, history: &[String]) -> std::io::Result<()> {
    let mut text = history.join("\n");
    text.push('\n');
    std::fs::write(path, text)
}

/// A progress bar on a terminal, plain lines otherwise.
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines,
}

fn progress_bar(total: u64) -> Progress {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds, {msg} [{elapsed_precise}, eta {eta}]",
        ) {
            bar.set_style(style);
        }
        bar.set_message("0 violations");
        Progress::Bar(bar)
    } else {
        Progress::Lines
    }
}

impl Progress {
    fn report(&self, seed: u64, violated: bool) {
        match self {
            Progress::Bar(bar) => {
                bar.inc(1);
                if violated {
                    bar.println(format!("seed {seed}: VIOLATION"));
                }
            }
            Progress::Lines => {
                let status = if violated { "VIOLATION" } else { "ok" };
                eprintln!("seed {seed}: {status}");
            }
        }
    }

    fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
